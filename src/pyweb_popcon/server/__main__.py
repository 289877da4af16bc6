from pyweb_popcon.server.cli import main

raise SystemExit(main())
