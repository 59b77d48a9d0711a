"""Media adapters: fetching and checking images and files before anyone else sees them."""
