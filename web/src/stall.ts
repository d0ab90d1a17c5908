//! One-way media watchdog shared by 1:1 calls and conferences: decides from inbound RTP byte
//! counts when media has stalled on a connected peer connection. Pure logic, no timers or
//! WebRTC: the caller samples getStats and acts (ICE restart) when it answers true.

/** Fresh media bytes of an inbound-rtp stats entry: retransmissions excluded, since an SFU's
 * bandwidth probes resend earlier packets (RTX) while the publishers are silent, and a dead
 * path is about new media not arriving. */
export function freshBytes(s: { bytesReceived?: number; retransmittedBytesReceived?: number }): number {
  return Math.max(0, (s.bytesReceived ?? 0) - (s.retransmittedBytesReceived ?? 0));
}

/** Fresh inbound media bytes of the kinds the peer is expected to send: video only while its
 * camera (or a screen share) is on, since a peer that turns its camera off stops sending video
 * packets at all (its sender's track is removed), whereas a muted microphone keeps sending. */
export function expectedBytes(stats: Iterable<InboundStats>, video: boolean): number {
  let bytes = 0;
  for (const s of stats) {
    if (s.type === "inbound-rtp" && (video || s.kind !== "video")) bytes += freshBytes(s);
  }
  return bytes;
}

/** Inbound media that stops growing for this long on a connected call counts as a dead path. */
export const MEDIA_STALL_MS = 2500;
/** Watchdog restarts back off (a peer that really stopped sending is not restarted every 2.5 s). */
const STALL_BACKOFF_MS = [0, 10000, 30000, 60000];

/** Decides when inbound media has stalled: fed the total inbound RTP bytes once a second, it
 * answers true when a restart is due. It arms only after bytes were seen growing (a peer that
 * sends nothing, e.g. no microphone and no camera, never trips it), and after each trip it waits
 * longer (STALL_BACKOFF_MS) unless media resumed in between. */
export class StallWatch {
  private last = -1;
  private since = 0;
  private armed = false;
  private trips = 0;
  private nextAt = 0;

  /** Nothing is expected to arrive (e.g. every other conference participant muted): forget
   * the history, so that silence now does not count; it arms again once bytes grow. */
  pause() {
    this.last = -1;
    this.armed = false;
  }

  sample(bytes: number, now: number): boolean {
    if (bytes !== this.last) {
      if (this.last >= 0 && bytes > this.last) {
        // Media resumed after a stall: the next stall restarts at once again.
        if (this.armed && now - this.since >= MEDIA_STALL_MS) {
          this.trips = 0;
          this.nextAt = 0;
        }
        this.armed = true;
      }
      this.last = bytes;
      this.since = now;
      return false;
    }
    if (!this.armed || now - this.since < MEDIA_STALL_MS || now < this.nextAt) return false;
    this.nextAt = now + STALL_BACKOFF_MS[Math.min(this.trips + 1, STALL_BACKOFF_MS.length - 1)];
    this.trips++;
    return true;
  }
}

type InboundStats = { type?: string; kind?: string; bytesReceived?: number; retransmittedBytesReceived?: number };

/** A 1:1 call's watch: the bytes the peer is expected to send ([`expectedBytes`]), and a fresh
 * start whenever the peer's camera goes off or on, since the sum then changes and a video-only
 * peer with its camera off sends nothing at all (not a dead path). */
export class CallMediaWatch {
  private watch = new StallWatch();
  private video = true;

  /** Fed the inbound stats once a second, with whether the peer's camera or screen share is
   * on; answers true when a restart is due. */
  sample(stats: Iterable<InboundStats>, video: boolean, now: number): boolean {
    if (video !== this.video) {
      this.video = video;
      this.watch.pause();
    }
    return this.watch.sample(expectedBytes(stats, video), now);
  }
}
