"""Layer 6: computer vision."""
