import { describe, expect, it } from "vitest";
import { CallMediaWatch, MEDIA_STALL_MS, StallWatch, expectedBytes, freshBytes } from "./stall";

/** Feeds one sample a second: `bytes[i]` at second i; answers the seconds at which it tripped. */
function trips(bytes: number[]): number[] {
  const w = new StallWatch();
  const out: number[] = [];
  bytes.forEach((b, i) => w.sample(b, i * 1000) && out.push(i));
  return out;
}

describe("StallWatch (one-way media watchdog)", () => {
  it("stays quiet while inbound bytes grow", () => {
    expect(trips([0, 100, 200, 300, 400, 500, 600, 700])).toEqual([]);
  });

  it("trips once the bytes stop growing for MEDIA_STALL_MS", () => {
    expect(MEDIA_STALL_MS).toBeLessThanOrEqual(3000);
    // Growth until second 2, then flat: the stall is due at 2 + 2.5 s, sampled at second 5.
    expect(trips([0, 100, 200, 200, 200, 200, 200])).toEqual([5]);
  });

  it("never arms for a peer that sends nothing", () => {
    expect(trips(new Array(20).fill(0))).toEqual([]);
    expect(trips(new Array(20).fill(500))).toEqual([]);
  });

  it("backs off while media stays stalled", () => {
    const flat = [0, 100, ...new Array(120).fill(100)];
    // At 4 s, then 10 s, 30 s and 60 s apart.
    expect(trips(flat)).toEqual([4, 14, 44, 104]);
  });

  it("restarts at once again after media resumed", () => {
    const b = [0, 100, 100, 100, 100, 100, 200, 300, 400, 400, 400, 400, 400];
    // First stall trips at 4; media resumes at 6, stalls from 8 and trips at 11 (not 14).
    expect(trips(b)).toEqual([4, 11]);
  });
});

describe("StallWatch.pause (nothing expected to arrive)", () => {
  it("does not count silence while paused and re-arms on growth", () => {
    const w = new StallWatch();
    const fired: number[] = [];
    // Growth, then the others mute at second 2: paused for 10 s, no trip.
    [0, 100, 200].forEach((b, i) => w.sample(b, i * 1000) && fired.push(i));
    for (let i = 3; i < 13; i++) w.pause();
    // Unpaused at 13 with the same count: not armed until bytes grow again.
    for (let i = 13; i < 20; i++) if (w.sample(200, i * 1000)) fired.push(i);
    expect(fired).toEqual([]);
    // Growth at 20 and 21, then flat: trips 2.5 s later.
    [300, 400, 400, 400, 400, 400].forEach((b, i) => w.sample(b, (20 + i) * 1000) && fired.push(20 + i));
    expect(fired).toEqual([24]);
  });
});

describe("freshBytes", () => {
  it("leaves out retransmitted bytes (an SFU's RTX probes are not new media)", () => {
    expect(freshBytes({ bytesReceived: 5000, retransmittedBytesReceived: 1200 })).toBe(3800);
    expect(freshBytes({ bytesReceived: 5000 })).toBe(5000);
    expect(freshBytes({})).toBe(0);
  });
});

describe("expectedBytes (what the peer is expected to send)", () => {
  const stats = [
    { type: "inbound-rtp", kind: "audio", bytesReceived: 1000 },
    { type: "inbound-rtp", kind: "video", bytesReceived: 9000, retransmittedBytesReceived: 500 },
    { type: "candidate-pair", bytesReceived: 50000 },
  ];
  it("counts fresh audio and video while the camera is on", () => {
    expect(expectedBytes(stats, true)).toBe(9500);
  });
  it("leaves video out while the peer's camera is off", () => {
    expect(expectedBytes(stats, false)).toBe(1000);
  });
  it("does not trip when a video-only peer turns its camera off", () => {
    // Video-only media grows, the peer signals camera off at second 3, and nothing arrives
    // for a minute.
    const w = new CallMediaWatch();
    const fired: number[] = [];
    for (let i = 0; i < 60; i++) {
      const sample = [{ type: "inbound-rtp", kind: "video", bytesReceived: 1000 * Math.min(i, 3) }];
      if (w.sample(sample, i < 3, i * 1000)) fired.push(i);
    }
    expect(fired).toEqual([]);
    // Without the pause, the same silence trips it.
    expect(trips([0, 1000, 2000, 3000, 3000, 3000, 3000, 3000])).toEqual([6]);
  });
});
