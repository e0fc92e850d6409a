from skillstack.cli import main

raise SystemExit(main())
