"""BlueZ over D-Bus (dbus-fast): the only package that imports dbus_fast."""
