"""The domain of Bazaar: conversations between buyers and sellers, free of HTTP, Matrix and SQL."""
