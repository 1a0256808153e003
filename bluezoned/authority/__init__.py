"""The health authority's side: upload checks, signed key exports, index and retention."""
