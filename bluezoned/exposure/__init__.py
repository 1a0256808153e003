"""The pure exposure core: key schedule, key files, matching and scoring. No I/O, no clock."""
