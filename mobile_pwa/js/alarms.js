// How alarms are presented (ISA-18.2 / IEC 62682 practice): priority colours, state order, sorting.

import { pick, t } from "./i18n.js";

/** Priority 4 critical (red), 3 high (orange), 2 medium (yellow), 1 low (cyan). */
export const PRIORITY_CLASS = { 4: "p4", 3: "p3", 2: "p2", 1: "p1" };

const STATE_RANK = {
  active_unacked: 0, latched_unacked: 0, cleared_unacked: 1, active_acked: 2, latched_acked: 2,
  shelved: 3, suppressed: 4, out_of_service: 5, normal: 6,
};

export const needsAck = (a) => a.needs_ack ?? ["active_unacked", "latched_unacked", "cleared_unacked"].includes(a.state);
export const isActive = (a) => a.condition_active ?? a.state.startsWith("active");

/** Priority first, then state (unacknowledged first), then the newest. */
export function sortAlarms(alarms) {
  const when = (a) => Date.parse(a.last_raised_at || a.raised_at || a.opened_at || 0) || 0;
  return [...alarms].sort((a, b) => (b.priority - a.priority)
    || ((STATE_RANK[a.state] ?? 9) - (STATE_RANK[b.state] ?? 9)) || (when(b) - when(a)) || (b.id - a.id));
}

export const priorityName = (p) => t(`priority.${p}`);
export const stateName = (a) => t(`state.${a.state}`);
export const alarmTitle = (a) => pick(a, "title") || a.rule;

/** The worst (highest priority) open alarm of a list, or null. */
export function worst(alarms) {
  return alarms.filter((a) => a.state !== "normal" && a.state !== "out_of_service" && a.state !== "suppressed")
    .reduce((w, a) => (!w || a.priority > w.priority ? a : w), null);
}

/** Unacknowledged critical alarms (they sound). */
export const sounding = (alarms) => alarms.filter((a) => a.priority >= 4 && needsAck(a) && a.state !== "shelved");
