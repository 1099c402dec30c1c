"""The azd template, checked offline: it parses, its modules and symbols line up, it sets every app setting
the code reads, and it grants every role the code needs. (No bicep CLI here; pycep-parser parses Bicep.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Read by the code but deliberately not set on Azure, and why.
NOT_ON_AZURE = {
    "AUTOPILOT_STORAGE": "the app uses identity-based AUTOPILOT_STORAGE__*ServiceUri settings, no keys",
    "AUTOPILOT_DATA_DIR": "the local engine's working folder",
    "ALERT_TOPIC_KEY": "the app publishes alerts with its identity (EventGrid Data Sender)",
}
ROLES = {
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "Monitoring Reader": "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
}
KEYWORDS = {"param", "var", "resource", "module", "output", "existing", "for", "in", "if", "true", "false",
            "null", "targetScope", "string", "int", "bool", "object", "array", "import", "type", "func"}
FUNCTIONS = {"uniqueString", "toLower", "subscription", "resourceGroup", "guid", "subscriptionResourceId",
             "empty", "concat", "union", "listKeys", "resourceId", "take", "contains", "tenant", "deployer",
             "environment", "length", "format", "replace", "split", "string", "loadJsonContent"}


def parse(path: Path) -> dict[str, Any]:
    pycep = pytest.importorskip("pycep", reason="pip install pycep-parser (requirements-dev.txt)")
    return dict(pycep.BicepParser().parse(file_path=path))


def code_of(text: str) -> str:
    """The Bicep text without comments, with string literals blanked but their ${...} expressions kept."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if not token.startswith("'"):
            return ""  # a comment
        return " ".join(re.findall(r"\$\{([^}]*)\}", token)) or "''"

    # One pass, so '//' inside a string (https://...) is not taken for a comment.
    return re.sub(r"'(?:[^'\\]|\\.)*'|//[^\n]*|/\*.*?\*/", replace, text, flags=re.S)


def declared(text: str) -> set[str]:
    names = re.findall(r"^\s*(?:param|var|output)\s+(\w+)", text, flags=re.M)
    names += re.findall(r"^\s*(?:resource|module)\s+(\w+)\s", text, flags=re.M)
    names += re.findall(r"\bfor\s+(\w+)\s+in\b", text)
    return set(names)


def test_there_is_an_azd_template() -> None:
    azure_yaml = (ROOT / "azure.yaml").read_text()
    assert "host: function" in azure_yaml and "language: python" in azure_yaml
    assert (INFRA / "main.bicep").exists() and (INFRA / "main.parameters.json").exists()
    json.loads((INFRA / "main.parameters.json").read_text())


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_every_template_parses(path: Path) -> None:
    assert parse(path)["globals"]


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_every_symbol_used_is_declared_and_every_param_is_used(path: Path) -> None:
    text = path.read_text()
    code = code_of(text)
    symbols = declared(text)
    # Identifiers that are not property names (after '.'), object keys, decorators or resource API versions.
    used = set(re.findall(r"(?<![.@\w])([A-Za-z_]\w*)\b(?!\s*:(?!:))", code))
    keys = set(re.findall(r"(?:^|[{,])\s*(\w+)\s*:", code, flags=re.M))
    unknown = used - symbols - KEYWORDS - FUNCTIONS - keys
    assert not unknown, f"{path.name} uses undeclared names: {sorted(unknown)}"
    params = re.findall(r"^\s*param\s+(\w+)", text, flags=re.M)
    unused = [p for p in params if len(re.findall(rf"(?<![.\w]){p}\b", code)) < 2]
    assert not unused, f"{path.name} declares params it never uses: {unused}"


def test_every_module_exists_and_gets_exactly_its_params() -> None:
    for path in BICEP_FILES:
        for name, module in parse(path).get("modules", {}).items():
            target = path.parent / module["detail"]["path"]
            assert target.exists(), f"{path.name}: module {name} points at missing {target}"
            wanted = parse(target).get("parameters", {})
            config = module["config"]
            config = config.get("config", config)  # a conditional module nests its body
            given = set(config.get("params", {}))
            assert given <= set(wanted), f"{name}: undeclared params {given - set(wanted)}"
            required = {p for p, spec in wanted.items() if spec.get("default") is None}
            assert required <= given, f"{name}: required params not passed: {required - given}"
            outputs = set(parse(target).get("outputs", {}))
            for used in re.findall(rf"\b{name}\.outputs\.(\w+)", path.read_text()):
                assert used in outputs, f"{path.name} reads {name}.outputs.{used}, which {target.name} lacks"


def settings_read_by_the_code() -> set[str]:
    return {s.env for s in SETTINGS} | {"APPLICATIONINSIGHTS_CONNECTION_STRING"}  # shared/observability.py


def app_settings_in_template() -> set[str]:
    text = (INFRA / "main.bicep").read_text() + (INFRA / "modules" / "functionapp.bicep").read_text()
    return set(re.findall(r"^\s*([A-Za-z][A-Za-z0-9_]*(?:__\w+)?)\s*:", text, flags=re.M))


def test_the_template_sets_every_app_setting_the_code_reads() -> None:
    read = settings_read_by_the_code()
    assert {"AUTOPILOT_PLATFORM", "AZUREML_WORKSPACE", "IDLE_TTL"} <= read  # the scan itself works
    missing = read - app_settings_in_template() - set(NOT_ON_AZURE)
    assert not missing, f"app settings read by shared/settings.py but not set in infra/: {sorted(missing)}"
    main = (INFRA / "main.bicep").read_text()
    assert re.search(r"AUTOPILOT_PLATFORM:\s*'azureml'", main)
    for service in ("blob", "table", "queue"):
        assert f"AUTOPILOT_STORAGE__{service}ServiceUri" in main
    assert not re.search(r"AccountKey|listKeys\([^)]*storage", main), "no storage keys in app settings"


def test_every_role_the_code_needs_is_assigned() -> None:
    templates = "".join(p.read_text() for p in BICEP_FILES)
    for role, guid in ROLES.items():
        assert guid in templates, f"role {role} ({guid}) is not assigned"
    assert "principalId: appPrincipalId" in templates


def test_the_step_queue_and_its_poison_queue_exist_and_are_named_to_the_app() -> None:
    main = (INFRA / "main.bicep").read_text()
    storage = (INFRA / "modules" / "storage.bicep").read_text()
    assert re.search(r"var stepQueue = 'autopilot-steps'", main) and "STEP_QUEUE: stepQueue" in main
    assert "queues: [stepQueue, '${stepQueue}-poison']" in main
    assert "Microsoft.Storage/storageAccounts/queueServices/queues@" in storage
    assert "for queue in queues" in storage


def test_event_grid_delivers_complete_uploads_and_run_events_to_the_functions() -> None:
    blob = (INFRA / "modules" / "blob-events.bicep").read_text()
    assert "functionName=Host.Functions.ingest" in blob and "Microsoft.Storage.BlobCreated" in blob
    assert "'data.api'" in blob and all(api in blob for api in ("PutBlob", "PutBlockList", "FlushWithClose"))
    assert "/containers/${incomingContainer}/blobs/" in blob
    ml = (INFRA / "modules" / "ml-access.bicep").read_text()
    assert "/functions/job_events" in ml
    assert "Microsoft.MachineLearningServices.RunCompleted" in ml
    assert "Microsoft.MachineLearningServices.RunStatusChanged" in ml
    function_app = (INFRA / "modules" / "functionapp.bicep").read_text()
    assert "FlexConsumption" in function_app and "type: 'SystemAssigned'" in function_app
    assert "name: 'python'" in function_app


def test_an_existing_workspaces_system_topic_is_reused_and_a_new_one_is_in_the_workspaces_region() -> None:
    template = parse(INFRA / "modules" / "ml-access.bicep")
    resources = template["resources"]
    topic = resources["runEvents"]
    assert topic["type"] == "Microsoft.EventGrid/systemTopics"
    # Created only when no existing topic is named (Event Grid allows one system topic per source) ...
    assert topic["config"]["condition"] == "createTopic"
    body = topic["config"]["config"]
    # ... and in the workspace's region: a system topic must be where its source is, not the app's region.
    assert body["location"] == {"operator": {"type": "property_accessor",
                                             "operands": {"operand_1": "workspace", "operand_2": "location"}}}
    assert "location" not in template["parameters"]
    variables = {k: v["value"] for k, v in template["variables"].items()}
    empty = {"type": "empty", "parameters": {"item_to_test": "existingSystemTopicName"}}
    assert variables["createTopic"] == {"function": empty}
    assert variables["topicName"]["operator"]["operands"]["false_value"] == "existingSystemTopicName"
    subscription = resources["toJobEvents"]["config"]["config"]
    assert subscription["name"] == "${topicName}/run-events-to-job-events"
    assert subscription["dependsOn"] == ["runEvents"]
    main = (INFRA / "main.bicep").read_text()
    assert "existingSystemTopicName: azureMlSystemTopicName" in main
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["azureMlSystemTopicName"]["value"] == "${AZUREML_SYSTEM_TOPIC=}"


def test_the_blob_webhook_key_is_read_only_after_the_app_is_deployed() -> None:
    # listKeys(host/default).systemKeys.blobs_extension exists once the code (its blob trigger) is deployed:
    # the module runs only with wireEvents, which the azd postdeploy hook turns on before provisioning again.
    main = parse(INFRA / "main.bicep")
    assert main["modules"]["blobEvents"]["config"]["condition"] == "wireEvents"
    blob = (INFRA / "modules" / "blob-events.bicep").read_text()
    assert "listKeys('${site.id}/host/default', '2024-04-01').systemKeys.blobs_extension" in blob
    azure_yaml = (ROOT / "azure.yaml").read_text()
    assert "postdeploy:" in azure_yaml and "./scripts/wire-events.sh" in azure_yaml
    hook = (ROOT / "scripts" / "wire-events.sh").read_text()
    assert "azd env set AUTOPILOT_WIRE_EVENTS true" in hook and "azd provision" in hook
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["wireEvents"]["value"] == "${AUTOPILOT_WIRE_EVENTS=false}"


def test_the_app_gets_a_stable_install_id_for_its_endpoint_name() -> None:
    main = (INFRA / "main.bicep").read_text()
    assert re.search(r"AUTOPILOT_INSTALL_ID:\s*token\b", main)
    assert "var token = toLower(uniqueString(subscription().id, environmentName, location))" in main


def test_webhook_alerts_are_signed_with_a_secret_the_app_reads_from_key_vault() -> None:
    main = (INFRA / "main.bicep").read_text()
    # The app setting is a Key Vault reference (resolved by the platform with the app's identity), set only
    # when a vault is named; the secret itself never passes through the deployment.
    assert "ALERT_WEBHOOK_SECRET: signAlerts ? webhookSecretReference : ''" in main
    assert ("var webhookSecretReference = '@Microsoft.KeyVault(VaultName=${alertWebhookSecretVault};"
            "SecretName=alert-webhook-secret)'") in main
    assert "var signAlerts = !empty(alertWebhookSecretVault)" in main
    module = parse(INFRA / "main.bicep")["modules"]["webhookSecretAccess"]
    assert module["config"]["condition"] == "signAlerts"
    access = (INFRA / "modules" / "webhook-secret-access.bicep").read_text()
    assert ROLES["Key Vault Secrets User"] in access and "scope: vault" in access
    assert "principalId: appPrincipalId" in access
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["alertWebhookSecretVault"]["value"] == "${ALERT_WEBHOOK_SECRET_VAULT=}"


# App settings the CLI does without, and why: it sends no alerts of its own to these (commands that change
# runs go through the app's API with --url), the webhook URL holds Slack's or Teams' token, and the signing
# secret is a Key Vault reference only the platform resolves.
NOT_FOR_THE_CLI = {"ALERT_WEBHOOK_URL": "a token in the URL", "ALERT_WEBHOOK_SECRET": "a Key Vault reference"}
# Values azd itself keeps in every environment (`azd env get-values`).
AZD_BUILT_INS = {"AZURE_ENV_NAME": "test", "AZURE_LOCATION": "swedencentral",
                 "AZURE_SUBSCRIPTION_ID": "⟨subscription().subscriptionId⟩"}


def bicep_values(main: str) -> dict[str, str]:
    """What a Bicep expression in main.bicep stands for, as far as the test can tell: a literal, a param's
    default, a var's literal or a member of a var's one-line object of literals; any other expression stands
    for itself (two identical expressions, one value)."""
    known = dict(re.findall(r"^param (\w+) string = '([^']*)'", main, flags=re.M))
    known |= dict(re.findall(r"^var (\w+) = '([^'$]*)'$", main, flags=re.M))
    for name, members in re.findall(r"^var (\w+) = \{(.*)\}$", main, flags=re.M):
        known |= {f"{name}.{k}": v for k, v in re.findall(r"(\w+): '([^'$]*)'", members)}
    return known


def evaluate(expression: str, known: dict[str, str]) -> str:
    expression = expression.strip()
    literal = re.fullmatch(r"'([^'$]*)'", expression)
    if literal:
        return literal.group(1)
    return known.get(expression, f"⟨{expression}⟩")


def app_and_cli_environments() -> tuple[dict[str, str], dict[str, str]]:
    """(the app settings main.bicep gives the function app, what `azd env get-values` gives the CLI)."""
    main = (INFRA / "main.bicep").read_text()
    known = bicep_values(main)
    block = re.search(r"^    appSettings: \{\n(.*?)^    \}", main, flags=re.M | re.S)
    assert block, "main.bicep passes the app settings as one appSettings object"
    settings = re.findall(r"^\s+([A-Za-z]\w*): (.+)$", block.group(1), flags=re.M)
    outputs = re.findall(r"^output (\w+) string = (.+)$", main, flags=re.M)
    app = {name: evaluate(value, known) for name, value in settings}
    cli = AZD_BUILT_INS | {name: evaluate(value, known) for name, value in outputs}
    return app, cli


def test_the_cli_gets_every_setting_the_app_gets_that_it_needs() -> None:
    from shared.settings import Settings

    app, cli = app_and_cli_environments()
    assert {"AZUREML_WORKSPACE", "AUTOPILOT_INSTALL_ID", "STEP_QUEUE"} <= set(app)  # the scan itself works
    app = {k: v for k, v in app.items() if k not in NOT_FOR_THE_CLI}
    as_the_app = Settings.from_env(app)
    # A setting the CLI lacks matters when the app's settings without it are not the app's settings.
    needed = {name for name in app if not _same_without(app, name, as_the_app)}
    missing = sorted(name for name in needed if cli.get(name) != app[name])
    assert not missing, f"app settings that differ from the code's defaults, not among the outputs: {missing}"
    assert Settings.from_env(cli) == as_the_app
    assert "AUTOPILOT_URL" in cli  # `autopilot status|redeploy --url`


def _same_without(env: dict[str, str], name: str, expected: Any) -> bool:
    from shared.settings import Settings, SettingsError

    try:
        return bool(Settings.from_env({k: v for k, v in env.items() if k != name}) == expected)
    except SettingsError:  # a required setting
        return False


def test_the_cli_and_the_app_derive_the_same_endpoint_name() -> None:
    from shared.settings import Settings

    app, cli = app_and_cli_environments()
    name = Settings.from_env({k: v for k, v in app.items() if k not in NOT_FOR_THE_CLI}).endpoint_name
    assert re.fullmatch(r"autopilot-chat-[0-9a-f]{8}", name)
    assert Settings.from_env(cli).endpoint_name == name
    # `autopilot check-azure` forces the Azure ML platform over whatever the environment says.
    assert Settings.from_env({**cli, "AUTOPILOT_PLATFORM": "azureml"}).endpoint_name == name


def test_outputs_that_azd_passes_back_as_parameters_keep_their_meaning() -> None:
    # azd writes outputs into its environment, and main.parameters.json reads some of those names: the next
    # provision (the postdeploy hook's, or `azd up` after `azd down`) must mean the same by them.
    main = (INFRA / "main.bicep").read_text()
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    read_back = {re.match(r"\$\{(\w+)", p["value"]).group(1) for p in parameters.values()  # type: ignore[union-attr]
                 if str(p["value"]).startswith("${")}
    outputs = set(re.findall(r"^output (\w+) ", main, flags=re.M))
    assert outputs & read_back == {"AZUREML_WORKSPACE", "AZUREML_RESOURCE_GROUP", "BASE_MODEL", "IDLE_TTL"}
    # Our own workspace's name coming back still means "create it" (it is gone after `azd down`).
    assert "var ownWorkspaceName = 'mlw-${token}'" in main
    own = "var createWorkspace = empty(azureMlWorkspaceName) || azureMlWorkspaceName == ownWorkspaceName"
    assert own in main
    assert "output AZUREML_WORKSPACE string = mlWorkspaceName" in main
    # The resource group comes back as rg.name, which is what empty means; the others come back unchanged.
    assert "var mlResourceGroupName = empty(azureMlResourceGroup) ? rg.name : azureMlResourceGroup" in main
    assert "output BASE_MODEL string = baseModel" in main and "output IDLE_TTL string = idleTtl" in main
