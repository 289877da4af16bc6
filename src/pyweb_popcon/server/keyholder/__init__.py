"""What holds the key: run as pyweb-popcon-ingest (the ingest unit); reads
the spool and the key, writes the store and the quarantine."""
