import { describe, expect, it } from "vitest";
import {
  Roster, Participant, parseRoster, parseSlots, parseSendLayers, parseStatus, sendEncodings, gridShape, viewFor, viewElement,
  viewChanged, layerFor, talkerOf, mainFromSlots, rememberSpeaker, arrange, participantList, rosterDiff, THUMB_HEIGHT, GRID_MID_TILE_HEIGHT,
} from "./conference";
import { parse, serialize } from "./xml";

const NS = "urn:xmpp:iris:conference:0";
const el = (s: string) => {
  const e = parse(s);
  if (!e) throw new Error("bad xml");
  return e;
};
const person = (id: string, o: Partial<Participant> = {}): Participant => ({
  id, nick: `n${id}`, jid: `u${id}@x`, audio: true, video: true, screen: false, audioMuted: false, videoMuted: false, ...o,
});
const roster = (speaker: string | null, ...ps: Participant[]): Roster => ({ speaker, participants: ps });

describe("conference payloads", () => {
  it("parses the roster with mute states and the speaker", () => {
    const r = parseRoster(
      el(`<roster xmlns="${NS}" speaker="2"><participant id="1" nick="ann" jid="ann@x" audio="true" video="true" screen="false" audio-muted="true" video-muted="false"/><participant id="2" nick="bob" jid="bob@x" audio="true" video="false" screen="true" audio-muted="false" video-muted="false"/><participant nick="no-id"/></roster>`),
    );
    expect(r.speaker).toBe("2");
    expect(r.participants.map((p) => p.id)).toEqual(["1", "2"]);
    expect(r.participants[0]).toMatchObject({ nick: "ann", jid: "ann@x", audioMuted: true, videoMuted: false });
    expect(r.participants[1]).toMatchObject({ video: false, screen: true });
    expect(parseRoster(el(`<roster xmlns="${NS}"/>`)).speaker).toBeNull();
  });

  it("parses slots, send layers and status", () => {
    expect(parseSlots(el(`<slots xmlns="${NS}"><slot mid="5" participant="2"/><slot mid="6"/></slots>`))).toEqual({ "5": "2", "6": null });
    expect(parseSendLayers(el(`<send-layers xmlns="${NS}" l="true" m="false" h="1"/>`))).toEqual({ l: true, m: false, h: true });
    expect(parseStatus(el(`<status xmlns="${NS}" count="2"><participant jid="a@x"/><participant jid="b@x"/></status>`))).toEqual(["a@x", "b@x"]);
  });
});

describe("simulcast and views", () => {
  it("sends three layers within the SPEC caps, the top one at 480p in data-saver mode", () => {
    const normal = sendEncodings(false);
    expect(normal.map((e) => [e.rid, 720 / (e.scaleResolutionDownBy ?? 1)])).toEqual([
      ["l", 180],
      ["m", 360],
      ["h", 720],
    ]);
    // Under the caps, with headroom for the encoder's overshoot.
    const caps = [100_000, 300_000, 800_000];
    normal.forEach((e, i) => expect(e.maxBitrate).toBeLessThanOrEqual(caps[i]));
    normal.forEach((e, i) => expect(e.maxBitrate).toBeGreaterThanOrEqual(caps[i] * 0.8));
    const saver = sendEncodings(true);
    expect(720 / (saver[2].scaleResolutionDownBy ?? 1)).toBe(480);
    expect(saver.reduce((s, e) => s + (e.maxBitrate ?? 0), 0)).toBeLessThanOrEqual(800_000);
  });

  it("finds the grid with the largest 16:9 tiles", () => {
    expect(gridShape(1, 1280, 720, 0)).toEqual({ cols: 1, rows: 1, tileWidth: 1280, tileHeight: 720 });
    const four = gridShape(4, 1280, 720, 0);
    expect([four.cols, four.rows, four.tileHeight]).toEqual([2, 2, 360]);
    const twelve = gridShape(12, 1280, 720, 0);
    expect(twelve.cols * twelve.rows).toBeGreaterThanOrEqual(12);
    expect(twelve.tileHeight).toBeLessThan(GRID_MID_TILE_HEIGHT);
  });

  it("maps each view to the tile height the unit needs and the layer it forwards", () => {
    // A big stage with three tiles: tall tiles get 360p.
    const big = viewFor("grid", 3, 1280, 720, false);
    expect(big.tileHeight).toBeGreaterThanOrEqual(GRID_MID_TILE_HEIGHT);
    expect(layerFor(big, false)).toBe("m");
    // A small window: 180p.
    const small = viewFor("grid", 3, 800, 420, false);
    expect(small.tileHeight).toBeLessThan(GRID_MID_TILE_HEIGHT);
    expect(layerFor(small, false)).toBe("l");
    // Twelve tiles on a laptop screen: 180p.
    expect(layerFor(viewFor("grid", 13, 1280, 720, false), false)).toBe("l");
    // Talker: 720p for the talker.
    const talker = viewFor("talker", 3, 1280, 720, false);
    expect([talker.tileHeight, layerFor(talker, true)]).toEqual([720, "h"]);
    // Thumbnails: the talker at 720p, the thumbnails at 180p.
    const thumbs = viewFor("thumbnails", 6, 1280, 720, true);
    expect(thumbs).toEqual({ mode: "thumbnails", tileHeight: THUMB_HEIGHT, dataSaver: true });
    expect([layerFor(thumbs, true), layerFor(thumbs, false)]).toEqual(["h", "l"]);
    // A shared screen turns the cameras into thumbnails.
    expect(viewFor("grid", 3, 1280, 720, false, true).tileHeight).toBe(THUMB_HEIGHT);
  });

  it("builds the view payload and sends it only on a real change", () => {
    const v = { mode: "grid" as const, tileHeight: 180.6, dataSaver: true };
    expect(serialize(viewElement(v))).toBe(`<view xmlns="${NS}" mode="grid" tile-height="181" data-saver="true"/>`);
    expect(viewChanged(null, v)).toBe(true);
    expect(viewChanged(v, { ...v, tileHeight: 185 })).toBe(false);
    expect(viewChanged(v, { ...v, tileHeight: 240 })).toBe(true);
    expect(viewChanged({ ...v, tileHeight: 265 }, { ...v, tileHeight: 275 })).toBe(true);
    expect(viewChanged(v, { ...v, dataSaver: false })).toBe(true);
    expect(viewChanged(v, { ...v, mode: "talker" })).toBe(true);
  });
});

describe("who goes where", () => {
  it("puts the speaker in the main tile, else the most recent speaker, else the first to join", () => {
    const r = roster(null, person("1"), person("2"), person("3"));
    expect(talkerOf(r, "1", [])).toBe("2");
    expect(talkerOf(r, "1", ["3"])).toBe("3");
    expect(talkerOf({ ...r, speaker: "2" }, "1", ["3"])).toBe("2");
    // Never ourselves; a camera-less speaker gives way to someone with a camera.
    expect(talkerOf({ ...r, speaker: "1" }, "1", [])).toBe("2");
    const noCam = roster("2", person("1"), person("2", { videoMuted: true }), person("3"));
    expect(talkerOf(noCam, "1", [])).toBe("3");
    expect(talkerOf(roster(null, person("1")), "1", [])).toBeNull();
    expect(rememberSpeaker(["2", "3"], "3")).toEqual(["3", "2"]);
    expect(rememberSpeaker(["2"], null)).toEqual(["2"]);
  });

  it("takes the talker from what the unit forwards", () => {
    const r = roster("1", person("1"), person("2"), person("3"), person("4"));
    // Talker view: the one camera slot that is fed.
    expect(mainFromSlots("talker", r, "1", [], { "5": "3", "6": null }, {})).toBe("3");
    // Thumbnails view: the camera received taller than a thumbnail.
    expect(mainFromSlots("thumbnails", r, "1", [], { "5": "2", "6": "3", "7": "4" }, { "5": 180, "6": 720, "7": 180 })).toBe("3");
    // Nothing to tell yet: the speaker order.
    expect(mainFromSlots("thumbnails", r, "1", ["4"], { "5": "2", "6": "3" }, { "5": 180, "6": 180 })).toBe("4");
    expect(mainFromSlots("grid", r, "1", [], { "5": "2" }, {})).toBeNull();
  });

  it("arranges talker, thumbnails and grid layouts", () => {
    const ps = ["1", "2", "3", "4", "5", "6", "7", "8"].map((id) => person(id));
    const r = roster("4", ...ps);
    const grid = arrange("grid", r, "1", "4", null);
    expect(grid.main).toBeNull();
    expect(grid.tiles.map((t) => t.id)).toEqual(["1", "2", "3", "4", "5", "6", "7", "8"]);
    expect(grid.tiles[0].me).toBe(true);
    const thumbs = arrange("thumbnails", r, "1", talkerOf(r, "1", []), null);
    expect(thumbs.main).toBe("4");
    // Five thumbnails of others, then ourselves.
    expect(thumbs.tiles.map((t) => t.id)).toEqual(["2", "3", "5", "6", "7", "1"]);
    const talker = arrange("talker", r, "1", "4", null);
    expect([talker.main, talker.tiles.map((t) => t.id)]).toEqual(["4", ["1"]]);
    // A shared screen takes the main area.
    const shared = arrange("talker", r, "1", "4", "6");
    expect([shared.main, shared.screen, shared.tiles.map((t) => t.id)]).toEqual([null, "6", ["4", "1"]]);
  });

  it("lists participants with mute states, us first, and who speaks", () => {
    const r = roster("3", person("1", { nick: "zed" }), person("2", { nick: "amy", audioMuted: true }), person("3", { nick: "bob", videoMuted: true, screen: true }), person("4", { nick: "cy", audio: false, video: false }));
    const list = participantList(r, "1", (p) => p.nick);
    expect(list.map((e) => e.name)).toEqual(["zed", "amy", "bob", "cy"]);
    expect(list[0].me).toBe(true);
    expect(list.find((e) => e.name === "amy")).toMatchObject({ audioMuted: true, videoOff: false, speaking: false });
    expect(list.find((e) => e.name === "bob")).toMatchObject({ speaking: true, videoOff: true, screen: true });
    expect(list.find((e) => e.name === "cy")).toMatchObject({ audioMuted: true, videoOff: true });
  });

  it("tells who joined and who left", () => {
    const a = roster(null, person("1"), person("2"));
    const b = roster(null, person("1"), person("3"));
    const d = rosterDiff(a, b);
    expect(d.joined.map((p) => p.id)).toEqual(["3"]);
    expect(d.left.map((p) => p.id)).toEqual(["2"]);
  });
});
