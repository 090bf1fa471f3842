"""REST views: check the input's shape, call one service or selector, render for the role."""
