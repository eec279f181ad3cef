import importlib
import inspect
import subprocess
import sys

import pytest

import knn_genre


def test_public_names_resolve():
    assert knn_genre.__all__ == ["__version__", *knn_genre._EXPORTS]
    assert set(knn_genre._EXPORTS) <= set(dir(knn_genre))
    for name, where in knn_genre._EXPORTS.items():
        module, attribute = where if isinstance(where, tuple) else (where, name)
        defining = importlib.import_module(f"knn_genre.{module}")
        # Each name is the very object of the module the table names, not a copy or a stand-in,
        obj = getattr(knn_genre, name)
        assert obj is getattr(defining, attribute), name
        # and that module defines it (a re-export would hide where to read it).
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert (obj.__module__, obj.__name__) == (defining.__name__, attribute), name
    assert knn_genre.KLKNNClassifier.__module__ == "knn_genre.classifiers.knn"
    assert (knn_genre.load_features, knn_genre.save_features) == (knn_genre.store.featureset.load, knn_genre.store.featureset.save)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        knn_genre.nothing


def test_feature_extraction_does_not_import_scikit_learn():
    # Worker processes import the builder; scikit-learn would add about a second to each start.
    code = "import sys, knn_genre.pipeline.build; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _modules():
    import pkgutil

    return [m.name for m in pkgutil.walk_packages(knn_genre.__path__, "knn_genre.") if not m.name.endswith("__main__")]


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run_as_written(name):
    # A public example is what a reader copies into a fresh session: it runs there, with the
    # imports it shows. (pytest --doctest-modules runs every example in its module's namespace.)
    import doctest

    module = importlib.import_module(name)
    failed = []
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name, globs={}):
        if test.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        out = []
        if doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE).run(test, out=out.append).failed:
            failed.append("".join(out))
    assert not failed, "\n".join(failed)
