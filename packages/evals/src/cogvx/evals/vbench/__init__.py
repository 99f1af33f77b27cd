"""VBench dimensions (Huang et al. 2024, arXiv 2311.17982), prompt suite and total scores."""
