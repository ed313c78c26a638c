// Package cedar holds warden's policies: Cedar policies over warden's vocabulary, the schema
// derived from registered tools, compiled and indexed policy sets, decisions and explanations.
//
// # Entity model
//
// A request becomes a Cedar request as follows (MODEL.md has the full account):
//
//   - principal: Agent::"<agent name>", with attributes owner and purpose (String) and the
//     agent's labels as entity tags: principal.hasTag("team") && principal.getTag("team") == "payments".
//     Agents have no parents.
//   - action: Action::"<tool>:<action>", such as Action::"github:issues.list". Each is in the
//     group Action::"<tool>", so `action in Action::"github"` means any action of the tool.
//   - resource: Tool::"<tool>" when the request names no resource, otherwise
//     Resource::"<resource>" whose parent is Tool::"<tool>"; `resource in Tool::"github"` matches both.
//   - context: args (the call's arguments), risk (String), risk_level (Long 1-4), tool (String),
//     on_behalf_of (String, "" when the agent acts as itself),
//     resource (String: the resource's name, "" when none, for `like` patterns), body_inspected (Bool, false when
//     an HTTP request body goes upstream unparsed), now (Long, Unix seconds), datetime (the same
//     instant as a Cedar datetime), and the flow facts: labels {output, data, effect},
//     session {id, untrusted_read, untrusted_sources, private_read} and taint {args, any}
//     (docs/flow.md; a record used whole is a compile problem).
//
// Arguments convert from JSON: objects are records, arrays sets, strings String, booleans Boolean;
// an integer within 64 bits is a Long, a fraction with at most 4 decimal places within decimal's
// range is a decimal; any other number, a null inside an array, or a value that is not JSON
// refuses the request. A null object member is left out.
//
// # Decisions
//
// Compile validates every policy against the tools and indexes the set by principal and action
// so that a decision evaluates only the policies that can apply. Engine.Decide denies by
// default, lets a forbid beat any permit, denies when a policy fails to evaluate (fail closed),
// and turns an allow into approval_required when a matching permit carries @approval("required"),
// or marks it approval_waived when one carries @approval("waived") (the gateway then does not ask
// for a person on account of the tool's risk).
// Engine.Explain says which policies were considered and what each made of the request.
//
// Grant compiles the simple grants of warden.yaml to Cedar text.
package cedar
