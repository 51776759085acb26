"""Teacher stage: English->Malay translation and gold-label reasoning from an OpenAI-compatible model."""

from hakim.data.teacher.result import TeacherResult, TeacherStats
from hakim.data.teacher.runner import run_teacher
from hakim.data.teacher.settings import TeacherError, TeacherSettings

__all__ = ["TeacherError", "TeacherResult", "TeacherSettings", "TeacherStats", "run_teacher"]
