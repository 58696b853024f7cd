"""Stand-in for the `mlx` package (see ../README.md): NOT MLX."""
