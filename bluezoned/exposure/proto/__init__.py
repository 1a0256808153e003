"""Generated protobuf modules of the export file format (export.proto); regenerate with ``make proto``."""
