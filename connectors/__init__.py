"""The edges: Avro framing and codecs, the agency publisher, the VLO queue reader."""
