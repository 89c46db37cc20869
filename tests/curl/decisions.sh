#!/usr/bin/env bash
# Decisions stated as error rates: "ambiguous", estimated FAR, the
# calibration report, the gallery's health. Leaves the gallery as it found it.
set -euo pipefail
: "${BASE:?}" "${DATA:?}"
source "$(dirname "$0")/lib.sh"

# One man enrolled twice: identify will not pick one of the two.
a=$(curl --fail -s -F image=@"$DATA/obama.jpg" -F name="Barack Obama" "$BASE/v1/enroll" | jq -er .person_id)
b=$(curl --fail -s -F image=@"$DATA/obama2.jpg" -F name="B. Obama" "$BASE/v1/enroll" | jq -er .person_id)
curl --fail -s -F image=@"$DATA/obama3.jpg" "$BASE/v1/identify" \
  | jq -e --arg a "$a" --arg b "$b" '.faces[0].status == "ambiguous" and .faces[0].match == null
      and ([.faces[0].candidates[0:2][].person_id] | sort) == ([$a, $b] | sort)
      and .faces[0].candidates[1].similarity >= .threshold and .ambiguity_margin > 0' >/dev/null

# Verify states how often another person's face scores as high.
curl --fail -s -F image=@"$DATA/biden.jpg" -F person_id="$a" "$BASE/v1/verify" \
  | jq -e '.match == false and .estimated_far > 0.001' >/dev/null
curl --fail -s -F image=@"$DATA/obama3.jpg" -F person_id="$a" "$BASE/v1/verify" \
  | jq -e '.match == true and .estimated_far < 0.00001' >/dev/null

# The thresholds in force, where they come from, and what they cost.
curl --fail -s "$BASE/v1/info" \
  | jq -e '.thresholds.verify_rule.embedder_default == .thresholds.verify and .thresholds.verify_expected_far > 0
      and .thresholds.identify_expected_fpir > 0 and (.thresholds.reference | contains("LFW View 1"))' >/dev/null
curl --fail -s "$BASE/v1/calibration" \
  | jq -e '.gallery.persons >= 3 and .reference.impostor_pairs > 1000000
      and ([.verify.targets[].threshold] | . == sort) and .identify.gallery_leave_one_out.probes >= 3' >/dev/null

# The two Obamas are one man: the health check pairs them, with their ids.
curl --fail -s "$BASE/v1/gallery/health" \
  | jq -e --arg a "$a" --arg b "$b" '[.look_alikes[] | select((.person_ids | sort) == ([$a, $b] | sort))] | length == 1' >/dev/null

curl --fail -s -o /dev/null -X DELETE "$BASE/v1/persons/$a"
curl --fail -s -o /dev/null -X DELETE "$BASE/v1/persons/$b"
