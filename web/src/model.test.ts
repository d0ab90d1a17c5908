import { describe, expect, it } from "vitest";
import { newConversation, addMessage, correct, retract, mark, linkify, clock, callEntry, lastIncoming, setTyping } from "./model";

const msg = (id: string, from: string, mine: boolean, ts: number, body = id) => ({ id, from, mine, ts, body, state: mine ? ("sent" as const) : undefined });

describe("conversation model", () => {
  it("orders by time, drops duplicates and counts unread only when inactive", () => {
    const c = newConversation("bob@x", "chat", "Bob");
    expect(addMessage(c, msg("b", "bob@x", false, 20), { active: false })).toBe(true);
    expect(addMessage(c, msg("a", "bob@x", false, 10), { active: false })).toBe(true);
    expect(addMessage(c, msg("b", "bob@x", false, 20), { active: false })).toBe(false);
    expect(c.messages.map((m) => m.id)).toEqual(["a", "b"]);
    // Only the newest incoming message counts (older ones come from history).
    expect(c.unread).toBe(1);
    addMessage(c, msg("c", "bob@x", false, 30), { active: true });
    expect(c.unread).toBe(1);
  });

  it("lets only the sender correct or retract", () => {
    const c = newConversation("bob@x", "chat", "Bob");
    addMessage(c, msg("a", "me@x", true, 1, "helo"), { active: true });
    expect(correct(c, "a", "bob@x", "hacked")).toBe(false);
    expect(correct(c, "a", "me@x", "hello")).toBe(true);
    expect(c.messages[0]).toMatchObject({ body: "hello", edited: true });
    expect(retract(c, "a", "bob@x")).toBe(false);
    expect(retract(c, "a", "me@x")).toBe(true);
    expect(c.messages[0]).toMatchObject({ body: "", retracted: true });
  });

  it("upgrades delivery state; displayed marks earlier own messages read", () => {
    const c = newConversation("bob@x", "chat", "Bob");
    addMessage(c, msg("a", "me@x", true, 1), { active: true });
    addMessage(c, msg("b", "me@x", true, 2), { active: true });
    expect(mark(c, "b", "delivered")).toBe(true);
    expect(c.messages.map((m) => m.state)).toEqual(["sent", "delivered"]);
    expect(mark(c, "b", "read")).toBe(true);
    expect(c.messages.map((m) => m.state)).toEqual(["read", "read"]);
    expect(mark(c, "b", "delivered")).toBe(false);
    expect(mark(c, "zzz", "read")).toBe(false);
  });

  it("tracks typing and the last incoming message", () => {
    const c = newConversation("bob@x", "chat", "Bob");
    setTyping(c, "bob@x", true);
    expect(c.typing).toEqual(["bob@x"]);
    addMessage(c, msg("a", "bob@x", false, 1), { active: true });
    expect(c.typing).toEqual([]);
    addMessage(c, msg("b", "me@x", true, 2), { active: true });
    expect(lastIncoming(c)?.id).toBe("a");
  });

  it("keeps one entry per call and its final outcome", () => {
    const c = newConversation("bob@x", "chat", "Bob");
    callEntry(c, "s1", "bob@x", false, 5, { video: true, outcome: "ringing" }, false);
    callEntry(c, "s1", "bob@x", false, 5, { outcome: "missed" }, false);
    callEntry(c, "s1", "bob@x", false, 5, { outcome: "answered" }, false);
    expect(c.messages).toHaveLength(1);
    expect(c.messages[0].call).toMatchObject({ video: true, outcome: "missed" });
  });
});

describe("text helpers", () => {
  it("finds http(s) links without trailing punctuation", () => {
    expect(linkify("see https://example.com/a?b=1. ok")).toEqual([
      { text: "see " },
      { text: "https://example.com/a?b=1", href: "https://example.com/a?b=1" },
      { text: ". ok" },
    ]);
    expect(linkify("javascript:alert(1)")).toEqual([{ text: "javascript:alert(1)" }]);
  });

  it("formats call durations", () => {
    expect(clock(0)).toBe("0:00");
    expect(clock(75)).toBe("1:15");
    expect(clock(3725)).toBe("1:02:05");
  });
});
