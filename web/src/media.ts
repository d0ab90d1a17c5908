//! Local media capture for calls and conferences when a device is missing, busy or refused:
//! which getUserMedia requests to try in turn and what to tell the user about the result. No
//! WebRTC, no UI (the caller shows the notice); `getUserMedia` can be passed in so that tests
//! stand in for the browser.

/** The requests to try, best first: everything asked for; then the microphone alone (no camera,
 * or another program holds it); then the camera alone (no microphone, or it was refused). An
 * audio-only request has no fallback: without a microphone the user watches and listens. */
export function captureAttempts(audio: MediaTrackConstraints | true, video: MediaTrackConstraints | false): MediaStreamConstraints[] {
  if (!video) return [{ audio, video: false }];
  return [
    { audio, video },
    { audio, video: false },
    { audio: false, video },
  ];
}

type GetUserMedia = (constraints: MediaStreamConstraints) => Promise<MediaStream>;

/** The first stream one of `attempts` yields, or null when every one fails (no devices at all,
 * or the user refused them: the call or conference then goes on receive-only). */
export async function captureFirst(
  attempts: MediaStreamConstraints[],
  getUserMedia: GetUserMedia = (c) => navigator.mediaDevices.getUserMedia(c),
): Promise<MediaStream | null> {
  for (const constraints of attempts) {
    try {
      return await getUserMedia(constraints);
    } catch {
      /* the next, smaller request */
    }
  }
  return null;
}

/** What to tell the user when capture gave less than asked for (null: nothing is missing). */
export function captureNotice(wantVideo: boolean, gotAudio: boolean, gotVideo: boolean): string | null {
  if (gotAudio && (gotVideo || !wantVideo)) return null;
  if (gotAudio) return "Camera unavailable: you are in with audio only";
  if (gotVideo) return "Microphone unavailable: others can see you but not hear you";
  return "No microphone or camera: you can watch and listen";
}

/** What [`captureMedia`] got: the stream (null: nothing at all), its tracks, and what to tell
 * the user about what is missing. */
export type Captured = { stream: MediaStream | null; mic: MediaStreamTrack | null; camera: MediaStreamTrack | null; notice: string | null };

/** Captures the chosen microphone (Settings: `iris.audioinput`) and `video` (false: none) with
 * the fallbacks of [`captureAttempts`]; the one entry point of calls and conferences. */
export async function captureMedia(video: MediaTrackConstraints | false, getUserMedia?: GetUserMedia): Promise<Captured> {
  const mic = localStorage.getItem("iris.audioinput");
  const stream = await captureFirst(captureAttempts(mic ? { deviceId: mic } : true, video), getUserMedia);
  const audioTrack = stream?.getAudioTracks()[0] ?? null;
  const camera = stream?.getVideoTracks()[0] ?? null;
  return { stream, mic: audioTrack, camera, notice: captureNotice(!!video, !!audioTrack, !!camera) };
}
