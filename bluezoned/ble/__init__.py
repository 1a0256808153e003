"""The radio edge: payload codec (pure), and later the bleak scanner and BlueZ advertiser."""
