import { describe, expect, it } from "vitest";
import { eventMarkers } from "./data";
import type { NazarEvent } from "./types";

const event = (over: Partial<NazarEvent>): NazarEvent => ({
  id: 1, kind: "deploy", title: "deploy web v1.2.3", service: "web", version: "v1.2.3", hosts: ["web-1"],
  start: "2026-12-07T03:20:00Z", end: null, link: null, labels: {}, ...over,
});

describe("event markers", () => {
  it("name the event once: version and service only when the title lacks them", () => {
    const [m] = eventMarkers([event({})]);
    expect(m).toEqual({ t: Date.parse("2026-12-07T03:20:00Z") / 1000, kind: "deploy", label: "deploy: deploy web v1.2.3" });
    expect(eventMarkers([event({ title: "release", kind: "config" })])[0]).toMatchObject({ kind: "event", label: "config: release v1.2.3 (web)" });
    expect(eventMarkers([event({ title: "web rollout", version: null })])[0].label).toBe("deploy: web rollout");
  });
});
