"""Accuracy evaluation of the exposure engine on the real datasets of ../shared/data/rssi (exposure.md §7)."""
