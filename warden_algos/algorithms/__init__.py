"""Built-in algorithms. Each module keeps heavy imports inside its methods (see interfaces.base)."""
