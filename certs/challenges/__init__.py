"""Challenge solvers. Each presents what the CA will check and cleans up exactly that."""
