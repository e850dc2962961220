#!/usr/bin/env python3
"""scikit-learn peer rows for bench/large-d.mjs (called by it when python3-sklearn is installed).

    python3 bench/sklearn-peer.py DIR D K NCLUSTERS ITERATIONS [PARTS]

DIR holds train.f32 / test.f32 (row-major float32, D columns), train.labels / test.labels (uint8,
one per row; may be absent) and centres.f32 (the K-means initial centres, NCLUSTERS x D). Prints one
JSON object: the brute-force K-NN time and neighbours (sklearn.neighbors.NearestNeighbors,
algorithm='brute', Euclidean), the K-NN accuracies for k = 1, 5, 10 (majority vote, ties to the
lowest label, as KNeighborsClassifier does), and the time per Lloyd iteration of sklearn.cluster.KMeans
(algorithm='lloyd', the given initial centres, tol = 0, ITERATIONS iterations).

PARTS (default "knn,kmeans,faiss") picks the rows: "faiss" times faiss.IndexFlatL2 where the faiss
module imports (Debian's python3-faiss), and is skipped otherwise. The OpenBLAS kernels in use are
reported as "blas" (threadpoolctl's architecture and thread count): bench/large-d.mjs runs this script
once as is and once with OPENBLAS_CORETYPE=Nehalem (OpenBLAS's 128-bit SSE kernels, Wasm's SIMD
width), which only takes effect when set before numpy loads OpenBLAS, hence a separate process.
"""
import json
import os
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"architecture": "unknown (no threadpoolctl)", "threads": os.environ.get("OMP_NUM_THREADS", "default")}
    for lib in threadpool_info():
        if lib.get("internal_api") == "openblas":
            return {"architecture": lib.get("architecture"), "threads": lib.get("num_threads")}
    libs = threadpool_info()
    first = libs[0] if libs else {}
    return {"architecture": f"not OpenBLAS ({first.get('internal_api', 'none')})", "threads": first.get("num_threads")}


def main():
    folder, d, k, n_clusters, iterations = sys.argv[1], *map(int, sys.argv[2:6])
    parts = set((sys.argv[6] if len(sys.argv) > 6 else "knn,kmeans,faiss").split(","))
    train = np.fromfile(os.path.join(folder, "train.f32"), dtype=np.float32).reshape(-1, d)
    test = np.fromfile(os.path.join(folder, "test.f32"), dtype=np.float32).reshape(-1, d)
    blas = blas_info()
    out = {"threads": blas["threads"], "blas": blas["architecture"]}

    if "faiss" in parts:
        try:
            import faiss
        except ImportError:
            faiss = None
        if faiss is not None:
            t = time.perf_counter()
            flat = faiss.IndexFlatL2(d)
            flat.add(np.ascontiguousarray(train))
            _, found = flat.search(np.ascontiguousarray(test), k)
            out["faiss_seconds"] = time.perf_counter() - t
            out["faiss_threads"] = faiss.omp_get_max_threads()
            out["faiss_indices"] = found.ravel().tolist()
    if "knn" not in parts:
        print(json.dumps(out))
        return

    t = time.perf_counter()
    index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(train)
    neighbours = index.kneighbors(test, return_distance=False)
    out["knn_seconds"] = time.perf_counter() - t
    out["indices"] = neighbours.ravel().tolist()

    labels_path = os.path.join(folder, "train.labels")
    if os.path.exists(labels_path):
        train_labels = np.fromfile(labels_path, dtype=np.uint8).astype(np.int64)
        test_labels = np.fromfile(os.path.join(folder, "test.labels"), dtype=np.uint8).astype(np.int64)
        accuracy = {}
        for kk in (1, 5, 10):
            if kk > k:
                continue
            votes = train_labels[neighbours[:, :kk]]
            # majority vote, ties to the lowest label (np.argmax of the counts takes the first maximum)
            counts = np.stack([(votes == c).sum(axis=1) for c in range(int(train_labels.max()) + 1)], axis=1)
            accuracy[str(kk)] = float((counts.argmax(axis=1) == test_labels).mean())
        out["accuracy"] = accuracy

    if "kmeans" not in parts:
        print(json.dumps(out))
        return
    centres = np.fromfile(os.path.join(folder, "centres.f32"), dtype=np.float32).reshape(n_clusters, d)
    t = time.perf_counter()
    km = KMeans(n_clusters=n_clusters, init=centres, n_init=1, max_iter=iterations, tol=0, algorithm="lloyd")
    km.fit(train)
    out["kmeans_seconds_per_iteration"] = (time.perf_counter() - t) / max(1, km.n_iter_)
    out["kmeans_iterations"] = int(km.n_iter_)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
