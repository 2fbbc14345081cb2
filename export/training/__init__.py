"""Off the deployment path: the demo models' trainers (torch) and the synthetic-people
generator (numpy and OpenCV only), which tests and the demo also use for data."""
