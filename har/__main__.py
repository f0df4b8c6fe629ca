from har.cli import main

raise SystemExit(main())
