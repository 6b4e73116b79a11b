"""Classical reference solvers and exact solutions used as baselines."""
