"""Before a run sends or a dry run promises anything: the key is set, the endpoint answers, the model is listed.

One models-list request costs nothing and turns "every row failed after minutes of retries" into one
line that names the setting to fix.
"""

from __future__ import annotations

import logging

import openai

from hakim.data.teacher.settings import TeacherError, TeacherSettings

log = logging.getLogger(__name__)


def endpoint_name(settings: TeacherSettings) -> str:
    return settings.base_url or "the OpenAI API"


async def check_endpoint(api: openai.AsyncOpenAI, settings: TeacherSettings) -> None:
    """Raise TeacherError when the endpoint is unreachable or refuses the key; warn when it does not list the model."""
    try:
        page = await api.models.list()
    except openai.APIConnectionError as error:
        raise TeacherError(f"teacher endpoint {endpoint_name(settings)} did not answer ({error.__class__.__name__}: "
                           f"{error}); check teacher.base_url and that the server is running") from None
    except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
        raise TeacherError(f"teacher endpoint {endpoint_name(settings)} refused the key (HTTP {error.status_code}): "
                           f"check ${settings.api_key_env} (teacher.api_key_env names it)") from None
    except openai.APIStatusError:
        return  # some servers do not list models; the first real request will say if the model is wrong
    served = [model.id for model in page.data]
    if served and settings.model not in served:
        log.warning("teacher endpoint %s does not list model %s (it lists %s); requests may fail with HTTP 404",
                    endpoint_name(settings), settings.model, ", ".join(served[:5]))
