from pyweb_popcon.cli import main

raise SystemExit(main())
