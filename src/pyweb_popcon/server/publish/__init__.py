"""What is published: run as pyweb-popcon-ingest (the aggregate unit);
reads the store, writes OUTPUT_DIR; never the spool or the key."""
