from apex.cli import main

raise SystemExit(main())
