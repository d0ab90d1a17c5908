import { describe, expect, it } from "vitest";
import { captureAttempts, captureFirst, captureMedia, captureNotice } from "./media";

/** A stand-in for getUserMedia on a machine with only the devices in `has`: a request for a
 * device it lacks fails as the browser's does (NotFoundError); it records every request. */
function machine(has: { audio: boolean; video: boolean }) {
  const asked: MediaStreamConstraints[] = [];
  const gum = async (c: MediaStreamConstraints) => {
    asked.push(c);
    if ((c.audio && !has.audio) || (c.video && !has.video)) throw new DOMException("Requested device not found", "NotFoundError");
    return { audio: !!c.audio, video: !!c.video } as unknown as MediaStream;
  };
  return { asked, gum };
}

const cam = { width: 640, height: 480 };

describe("capture with missing devices", () => {
  it("tries everything, then the microphone alone, then the camera alone", () => {
    expect(captureAttempts(true, cam)).toEqual([
      { audio: true, video: cam },
      { audio: true, video: false },
      { audio: false, video: cam },
    ]);
    // An audio call has nothing smaller to fall back to.
    expect(captureAttempts({ deviceId: "m1" }, false)).toEqual([{ audio: { deviceId: "m1" }, video: false }]);
  });

  it("takes the first request the machine can serve", async () => {
    const full = machine({ audio: true, video: true });
    expect(await captureFirst(captureAttempts(true, cam), full.gum)).toEqual({ audio: true, video: true });
    expect(full.asked).toHaveLength(1);

    const noCamera = machine({ audio: true, video: false });
    expect(await captureFirst(captureAttempts(true, cam), noCamera.gum)).toEqual({ audio: true, video: false });
    expect(noCamera.asked).toHaveLength(2);

    const noMic = machine({ audio: false, video: true });
    expect(await captureFirst(captureAttempts(true, cam), noMic.gum)).toEqual({ audio: false, video: true });
    expect(noMic.asked).toHaveLength(3);

    const nothing = machine({ audio: false, video: false });
    expect(await captureFirst(captureAttempts(true, cam), nothing.gum)).toBeNull();
    expect(nothing.asked).toHaveLength(3);
    expect(await captureFirst(captureAttempts(true, false), nothing.gum)).toBeNull();
  });

  it("tells the user only what is missing", () => {
    expect(captureNotice(true, true, true)).toBeNull();
    expect(captureNotice(false, true, false)).toBeNull();
    expect(captureNotice(true, true, false)).toMatch(/^Camera unavailable/);
    expect(captureNotice(true, false, true)).toMatch(/^Microphone unavailable/);
    expect(captureNotice(false, false, false)).toMatch(/watch and listen/);
    expect(captureNotice(true, false, false)).toMatch(/watch and listen/);
  });

  it("captures with the chosen microphone and reports the tracks it got", async () => {
    localStorage.setItem("iris.audioinput", "m1");
    const asked: MediaStreamConstraints[] = [];
    // A machine with a camera and no microphone.
    const gum = async (c: MediaStreamConstraints) => {
      asked.push(c);
      if (c.audio) throw new DOMException("Requested device not found", "NotFoundError");
      const camera = { kind: "video" } as MediaStreamTrack;
      return { getAudioTracks: () => [], getVideoTracks: () => [camera] } as unknown as MediaStream;
    };
    const got = await captureMedia(cam, gum);
    expect(asked[0]).toEqual({ audio: { deviceId: "m1" }, video: cam });
    expect(got.mic).toBeNull();
    expect(got.camera).toEqual({ kind: "video" });
    expect(got.notice).toMatch(/^Microphone unavailable/);
    const none = await captureMedia(false, gum);
    expect(none).toEqual({ stream: null, mic: null, camera: null, notice: expect.stringMatching(/watch and listen/) });
    localStorage.removeItem("iris.audioinput");
  });
});
