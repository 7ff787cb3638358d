"""Unsupervised feature learning on host or device arrays: PCA whitening, spherical k-means
(sharded over the data axis), and the window -> code -> pooled-summary encoding of
Dieleman & Schrauwen (ISMIR 2013). The job that runs them is mirjax/jobs/kmeans.py."""
