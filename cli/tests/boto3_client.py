"""An independent client for the simulator: boto3/botocore, which parses every response against AWS's own
service models. Run by tests/boto3.rs against `autopilot serve`; reads AWS_ENDPOINT_URL_<SERVICE> from the
environment. Exits non-zero with a message on the first mismatch."""
import json, os, sys
import boto3, botocore
from botocore.config import Config

# signed as the local estate's administrator: the protocols are under test here, not IAM
session = boto3.session.Session(aws_access_key_id="admin", aws_secret_access_key="local", region_name="eu-central-1")
no_retry = Config(retries={"max_attempts": 1, "mode": "standard"})
checks = []

def check(name, condition, detail=""):
    checks.append(name)
    if not condition:
        sys.exit(f"boto3 check failed: {name} {detail}")

def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
    return None

# WorkSpaces, awsJson1_1
ws = session.client("workspaces", config=no_retry)
pools = ws.describe_workspaces_pools()["WorkspacesPools"]
check("DescribeWorkspacesPools", {p["PoolId"] for p in pools} == {"wspool-sales0001", "wspool-support01", "wspool-finance01"}, pools)
check("pool timestamps are datetimes", all(hasattr(p["CreatedAt"], "year") for p in pools))
updated = ws.update_workspaces_pool(PoolId="wspool-sales0001", Capacity={"DesiredUserSessions": 25})["WorkspacesPool"]
check("UpdateWorkspacesPool", updated["CapacityStatus"]["DesiredUserSessions"] == 25, updated)
check("StartWorkspacesPool guard", error_code(lambda: ws.start_workspaces_pool(PoolId="wspool-sales0001")) == "InvalidResourceStateException")
check("missing pool", error_code(lambda: ws.describe_workspaces_pools(PoolIds=["wspool-missing"])) == "ResourceNotFoundException")
ws.start_workspaces_pool(PoolId="wspool-support01")
workspaces = [w for page in ws.get_paginator("describe_workspaces").paginate() for w in page["Workspaces"]]
check("DescribeWorkspaces (paginated)", len(workspaces) == 144, len(workspaces))
failed = ws.reboot_workspaces(RebootWorkspaceRequests=[{"WorkspaceId": "ws-z1x2c3v4b"}])["FailedRequests"]
check("RebootWorkspaces per-item failure", failed and failed[0]["ErrorCode"] == "InvalidResourceState.Workspace", failed)
check("DescribeWorkspacesConnectionStatus", ws.describe_workspaces_connection_status(WorkspaceIds=["ws-f8h2k9m1p"])["WorkspacesConnectionStatus"][0]["ConnectionState"] == "CONNECTED")
check("DescribeTags", {"Key": "team", "Value": "sales"} in ws.describe_tags(ResourceId="wspool-sales0001")["TagList"])
check("DescribeWorkspacesPoolSessions", ws.describe_workspaces_pool_sessions(PoolId="wspool-sales0001")["Sessions"] == [])

# AppStream, in both protocols botocore knows
def appstream_client(protocol):
    """An AppStream client speaking `protocol`: botocore picks the first protocol of the model it supports, so
    for awsJson1_1 a copy of AWS's model with only `json` listed is put on AWS_DATA_PATH."""
    if protocol != "json":
        return session.client("appstream", config=no_retry)
    import tempfile
    model = botocore.loaders.create_loader().load_service_model("appstream", "service-2")
    model["metadata"]["protocols"] = ["json"]
    model["metadata"]["protocol"] = "json"
    folder = tempfile.mkdtemp()
    os.makedirs(os.path.join(folder, "appstream", model["metadata"]["apiVersion"]))
    with open(os.path.join(folder, "appstream", model["metadata"]["apiVersion"], "service-2.json"), "w") as out:
        json.dump(model, out)
    os.environ["AWS_DATA_PATH"] = folder
    json_session = boto3.session.Session(botocore_session=botocore.session.Session(), aws_access_key_id="admin", aws_secret_access_key="local", region_name="eu-central-1")
    return json_session.client("appstream", config=no_retry)

for protocol in ["smithy-rpc-v2-cbor", "json"]:
    client = appstream_client(protocol)
    check(f"appstream protocol {protocol}", client.meta.service_model.protocol == protocol, client.meta.service_model.protocol)
    fleets = {f["Name"]: f for f in client.describe_fleets()["Fleets"]}
    check(f"DescribeFleets ({protocol})", set(fleets) == {"engineering-fleet", "callcenter-multi", "broken-fleet"}, list(fleets))
    check(f"fleet CreatedTime ({protocol})", hasattr(fleets["engineering-fleet"]["CreatedTime"], "year"))
    check(f"multi-session status ({protocol})", fleets["callcenter-multi"]["ComputeCapacityStatus"]["DesiredUserSessions"] == 40)
    check(f"UpdateFleet ({protocol})", client.update_fleet(Name="engineering-fleet", ComputeCapacity={"DesiredInstances": 9})["Fleet"]["ComputeCapacityStatus"]["Desired"] == 9)
    check(f"UpdateFleet wrong capacity ({protocol})", error_code(lambda: client.update_fleet(Name="callcenter-multi", ComputeCapacity={"DesiredInstances": 1})) == "InvalidParameterCombinationException")
    check(f"StopImageBuilder guard ({protocol})", error_code(lambda: client.stop_image_builder(Name="golden-builder")) == "OperationNotPermittedException")
    check(f"missing fleet ({protocol})", error_code(lambda: client.describe_fleets(Names=["nope"])) == "ResourceNotFoundException")
    builders = client.describe_image_builders()["ImageBuilders"]
    check(f"DescribeImageBuilders ({protocol})", len(builders) == 5)
    images = client.describe_images(Names=["golden-2026-11"])["Images"]
    check(f"DescribeImages ({protocol})", images[0]["State"] == "AVAILABLE")
    task = client.create_export_image_task(ImageName="golden-2026-11", AmiName=f"golden-{protocol}", IamRoleArn="arn:aws:iam::123456789012:role/r")["ExportImageTask"]
    check(f"CreateExportImageTask ({protocol})", task["State"] == "EXPORTING" and hasattr(task["CreatedDate"], "year"), task)
    check(f"GetExportImageTask ({protocol})", client.get_export_image_task(TaskId=task["TaskId"])["ExportImageTask"]["AmiName"] == f"golden-{protocol}")
    listed = client.list_export_image_tasks(Filters=[{"Name": "AmiName", "Values": [f"golden-{protocol}"]}])["ExportImageTasks"]
    check(f"ListExportImageTasks ({protocol})", [t["TaskId"] for t in listed] == [task["TaskId"]], listed)
    imported = client.create_imported_image(Name=f"imported-{protocol}", SourceAmiId="ami-0abc", IamRoleArn="arn:aws:iam::123456789012:role/r")["Image"]
    check(f"CreateImportedImage ({protocol})", imported["State"] == "IMPORTING")
    check(f"ListTagsForResource ({protocol})", client.list_tags_for_resource(ResourceArn="arn:aws:appstream:eu-central-1:123456789012:fleet/engineering-fleet")["Tags"]["autopilot/capacity"] == "engineering")

# Thin Client, restJson1 (botocore would prepend api. to the custom endpoint, so host prefixing is off)
tc = session.client("workspaces-thin-client", config=Config(inject_host_prefix=False, retries={"max_attempts": 1, "mode": "standard"}))
environments = tc.list_environments()["environments"]
check("ListEnvironments", {e["id"] for e in environments} == {"envcanary01", "envbroad0001"}, environments)
check("GetEnvironment", tc.get_environment(id="envcanary01")["environment"]["registeredDevicesCount"] == 5)
check("UpdateEnvironment", tc.update_environment(id="envcanary01", desiredSoftwareSetId="101")["environment"]["desiredSoftwareSetId"] == "101")
check("ListSoftwareSets", len(tc.list_software_sets()["softwareSets"]) == 2)
check("GetSoftwareSet", hasattr(tc.get_software_set(id="101")["softwareSet"]["supportedUntil"], "year"))
tc.update_software_set(id="100", validationStatus="VALIDATED")
devices = tc.list_devices(maxResults=20)
check("ListDevices pagination", len(devices["devices"]) == 20 and "nextToken" in devices)
check("GetDevice", tc.get_device(id="envcanary01-dev0000")["device"]["environmentId"] == "envcanary01")
check("UpdateDevice", tc.update_device(id="envcanary01-dev0000", name="desk")["device"]["name"] == "desk")
check("Thin Client missing", error_code(lambda: tc.get_device(id="nope")) == "ResourceNotFoundException")
check("Thin Client tags", tc.list_tags_for_resource(resourceArn="arn:aws:thinclient:eu-central-1:123456789012:environment/envcanary01")["tags"]["autopilot/ring"] == "canary")

# EventBridge
events = session.client("events", config=no_retry)
put = events.put_events(Entries=[{"Source": "euc.autopilot", "DetailType": "Export Completed", "Detail": json.dumps({"taskId": "t"})}])
check("PutEvents", put["FailedEntryCount"] == 0 and put["Entries"][0]["EventId"])

# Admin API: move the virtual clock, read the call log
import urllib.request
base = os.environ["AWS_ENDPOINT_URL_APPSTREAM"]
with urllib.request.urlopen(urllib.request.Request(f"{base}/_sim/advance?minutes=45", method="POST")) as answer:
    check("admin advance", json.load(answer)["now"].startswith("2026-11-23T00:45"))
done = client.get_export_image_task(TaskId=task["TaskId"])["ExportImageTask"]
check("export finished on the virtual clock", done["State"] in ("COMPLETED", "FAILED", "TIMED_OUT"), done)
with urllib.request.urlopen(f"{base}/_sim/calls") as answer:
    calls = [json.loads(line) for line in answer.read().decode().splitlines()]
check("call log as JSON lines", len(calls) >= 40 and {"seq", "at", "service", "operation", "outcome"} <= set(calls[0]), calls[:1])
check("call log names the protocol-independent operation", any(c["operation"] == "UpdateFleet" and c["service"] == "appstream" for c in calls))

print(f"boto3 {boto3.__version__} / botocore {botocore.__version__}: {len(checks)} checks passed")
