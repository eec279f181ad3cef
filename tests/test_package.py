import subprocess
import sys

import knn_genre


def test_public_names_resolve():
    for name in knn_genre.__all__:
        assert getattr(knn_genre, name) is not None
    assert knn_genre.KLKNNClassifier.__module__ == "knn_genre.classifiers.knn"


def test_feature_extraction_does_not_import_scikit_learn():
    # Worker processes import the builder; scikit-learn would add about a second to each start.
    code = "import sys, knn_genre.pipeline.build; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
