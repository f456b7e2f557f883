"""Issue 28: trust is decided per file. A zoo teacher (trusted code) must not turn safe
mode off for the files of a user's untrusted student, and the other way round."""
import types

import pytest

from pipeline.graph import Graph, Output, Stage
from pipeline.recipe import Recipe
from pipeline.runner import Context, Runner


@pytest.fixture(scope="module")
def lambda_files(tmp_path_factory):
    """The same Lambda model saved as the student's baseline and as the teacher's file."""
    from pipeline.keras import keras
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs))
    model = keras.Model(inputs, outputs)
    folder = tmp_path_factory.mktemp("trust")
    model.save(str(folder / "baseline.keras"))
    model.save(str(folder / "teacher.keras"))
    return str(folder)


def runner(folder, student_trusted: bool, teacher_trusted: bool | None) -> Runner:
    graph = Graph([Stage("train", lambda i, c: ({}, {}),
                         writes=(Output("float", "baseline.keras", "keras"),)),
                   Stage("teacher", lambda i, c: ({}, {}),
                         writes=(Output("teacher", "teacher.keras", "keras"),))])
    entry = types.SimpleNamespace(name="user", trust_code=student_trusted)
    teacher = (None if teacher_trusted is None else
               types.SimpleNamespace(name="zoo", trust_code=teacher_trusted))
    return Runner(graph, Context(entry=entry, recipe=Recipe(), out_dir=folder, dataset=None,
                                 teacher=teacher))


def test_a_trusted_zoo_teacher_leaves_the_untrusted_students_files_in_safe_mode(lambda_files):
    run = runner(lambda_files, student_trusted=False, teacher_trusted=True)
    assert run.load(run.graph.get("teacher"), "teacher").get_layer("double")  # Its own file.
    with pytest.raises(Exception, match="(?i)lambda|safe_mode"):
        run.load(run.graph.get("train"), "float")  # Before the fix: loaded, code ran.


def test_an_untrusted_teacher_file_stays_in_safe_mode_for_a_trusted_student(lambda_files):
    run = runner(lambda_files, student_trusted=True, teacher_trusted=False)
    assert run.load(run.graph.get("train"), "float").get_layer("double")
    with pytest.raises(Exception, match="(?i)lambda|safe_mode"):
        run.load(run.graph.get("teacher"), "teacher")


def test_without_a_teacher_the_students_trust_decides(lambda_files):
    assert runner(lambda_files, True, None).load(
        Stage("train", None, writes=(Output("float", "baseline.keras", "keras"),)), "float")
    with pytest.raises(Exception, match="(?i)lambda|safe_mode"):
        runner(lambda_files, False, None).load(
            Stage("train", None, writes=(Output("float", "baseline.keras", "keras"),)), "float")
