// Checks the local estate's IAM evaluator against an independent one, @cloud-copilot/iam-simulate: every case of
// the given matrices (each identity's resolved policies, and every action, resource and context the functions
// asked for, evaluated for every identity: allowed and refused alike) must get the same decision from both.
// iam-simulate also validates each request against the Service Authorization Reference (the action exists, the
// resource is of a type the action takes, the context keys apply), so a wrongly mapped request fails here too.
//
//   node scripts/iam/agree.mjs <authorizations.json>...   (written by `autopilot simulate` and the IAM test)
import { readFileSync } from 'node:fs'
import { runSimulation } from '@cloud-copilot/iam-simulate'

const OURS_TO_THEIRS = { Allowed: 'Allowed', ImplicitDeny: 'ImplicitlyDenied', ExplicitDeny: 'ExplicitlyDenied' }

let cases = 0
const counts = {}
const disagreements = []
for (const file of process.argv.slice(2)) {
  const matrix = JSON.parse(readFileSync(file, 'utf8'))
  for (const c of matrix.cases) {
    const principal = matrix.principals[c.principal]
    const identityPolicies = principal.policies.map((policy, i) => ({ name: `${c.principal}-${i}`, policy }))
    const result = await runSimulation(
      {
        identityPolicies,
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        request: {
          action: c.action,
          principal: principal.arn,
          resource: { resource: c.resource, accountId: principal.account },
          contextVariables: Object.fromEntries(
            Object.entries(c.context).map(([k, v]) => [k, v.length === 1 ? v[0] : v])
          )
        }
      },
      {}
    )
    cases += 1
    const theirs = result.errors ? `error: ${JSON.stringify(result.errors)}` : result.overallResult
    const ours = OURS_TO_THEIRS[c.decision] ?? c.decision
    counts[ours] = (counts[ours] ?? 0) + 1
    if (theirs !== ours) {
      disagreements.push(`${c.principal} ${c.action} on ${c.resource}: ours ${ours}, iam-simulate ${theirs}`)
    }
  }
}
console.log(
  `iam-simulate agreement: ${cases - disagreements.length} of ${cases} cases agree (${Object.entries(counts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ')})`
)
for (const d of disagreements.slice(0, 50)) console.log(`  DISAGREE ${d}`)
if (cases === 0 || disagreements.length > 0) process.exit(1)
