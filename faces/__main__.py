from l4mon.cli import main

raise SystemExit(main())
