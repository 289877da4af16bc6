from pyweb_popcon.server.admin.cli import main

raise SystemExit(main())
