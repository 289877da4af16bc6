from pyweb_popcon.client.cli import main

raise SystemExit(main())
