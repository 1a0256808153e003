"""The radio edge: payload codec (pure), bleak scanner, BlueZ advertiser, sighting aggregator."""
