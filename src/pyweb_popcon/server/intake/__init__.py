"""What faces strangers: run as pyweb-popcon-receiver (the receiver and DNS
units); may write into the spool's tmp/ and incoming/, nothing else."""
