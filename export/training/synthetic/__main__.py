import sys

from export.training.synthetic.dataset import main

sys.exit(main())
