"""`/api/v1/templates…`: templates addressed by name; each request is one sandbox-svc
command (sandbox-svc owns templates: it has the catalog and the driver)."""

from starlette.routing import BaseRoute

from llmsafespace.contracts import Template, TemplateRef, TemplateSpec, commands
from llmsafespace.contracts.templates import TEMPLATE_NAME_PATTERN

from .named import NamedResource
from .operation import ApiRoute, Operation, Ref, array, obj

TEMPLATES = NamedResource("template", TEMPLATE_NAME_PATTERN, TemplateRef, Template.public)

ROUTES: list[BaseRoute] = [
    ApiRoute(
        "POST",
        "/templates",
        TEMPLATES.create_endpoint(TemplateSpec, commands.TEMPLATE_CREATE),
        Operation(
            "Build a template",
            "templates",
            Ref(Template),
            201,
            body=TemplateSpec,
            errors=(403, 409),
            description="Builds the environment once: a builder sandbox of the template's"
            " runtime (yours, with network where the host has it) installs `packages.pip` into"
            " /workspace/.packages and `packages.npm` into /workspace/node_modules (through the"
            " package mirror when one is configured), then runs `setupCommands` in /workspace."
            " Its /workspace is then kept as a read-only layer, bound at /opt/template in every"
            " sandbox of the template (importable after the sandbox's own packages, never"
            " copied). Answers at once with `status: building`; follow the build with `resume"
            " {executionId: buildExecutionId, lastSeq: 0}` on"
            " `/sandboxes/{buildSandboxId}/stream`, or poll GET until `ready` or `failed` (with"
            " `reason` and `logTail`). `public: true` (admins only) makes it usable by"
            " everyone. Unknown runtime: 400; a taken name: 409; on the Kubernetes driver: 400"
            " (not available yet).",
        ),
    ),
    ApiRoute(
        "GET",
        "/templates",
        TEMPLATES.list_endpoint(commands.TEMPLATE_LIST, "templates", lambda page: page.templates),
        Operation(
            "List templates (yours and the public ones)",
            "templates",
            obj(templates=array(Ref(Template))),
        ),
    ),
    ApiRoute(
        "GET",
        "/templates/{name}",
        TEMPLATES.item_endpoint(commands.TEMPLATE_GET),
        Operation(
            "Get a template: its status, and why a failed build failed",
            "templates",
            Ref(Template),
            errors=(404,),
        ),
    ),
    ApiRoute(
        "DELETE",
        "/templates/{name}",
        TEMPLATES.item_endpoint(commands.TEMPLATE_DELETE),
        Operation(
            "Delete a template",
            "templates",
            Ref(Template),
            errors=(404, 409),
            description="Refused with 409 while a live sandbox or a warm pool uses it.",
        ),
    ),
]
