// The operator's video page plays a video with alternate audio and subtitles through the API's media route
// (no public base URL): hls.js lists both audio tracks and the subtitles, switches to the other audio track and
// keeps playing from its own segments, shows the subtitles' cues; every media request the page made is answered.
// Usage: node route.mjs BASE_URL USER PASSWORD VIDEO_ID SCREENSHOT_DIR — prints one JSON line of findings.
import { asOperator } from "./chromium.mjs";

await asOperator(async (page, { base, videoId, shots, findings }) => {
  const media = [];
  page.on("response", (r) => { if (r.url().includes("/media/")) media.push({ url: r.url().replace(/^.*\/media\//, ""), status: r.status() }); });
  await page.goto(`${base}/vodflow/ui/video?id=${encodeURIComponent(videoId)}`);
  await page.waitForFunction(() => { const h = document.getElementById("player").vodflowPlayer; return h && h.audioTracks.length >= 2 && h.subtitleTracks.length >= 1; }, null, { timeout: 60000 });
  findings.audio = await page.evaluate(() => document.getElementById("player").vodflowPlayer.audioTracks.map((t) => ({ name: t.name, lang: t.lang, url: t.url || null })));
  findings.subtitles = await page.evaluate(() => document.getElementById("player").vodflowPlayer.subtitleTracks.map((t) => ({ name: t.name, lang: t.lang, url: t.url })));
  await page.evaluate(() => {
    const h = document.getElementById("player").vodflowPlayer;
    window.loaded = [];
    window.cues = 0;
    h.on(Hls.Events.FRAG_LOADED, (_e, d) => window.loaded.push(d.frag.url));
    h.on(Hls.Events.SUBTITLE_FRAG_PROCESSED, (_e, d) => { if (d.success) window.subtitleFragments = (window.subtitleFragments || 0) + 1; });
    h.subtitleDisplay = true;
    h.subtitleTrack = 0;
    document.getElementById("player").play();
  });
  await page.waitForFunction(() => document.getElementById("player").currentTime > 1.0, null, { timeout: 30000 });
  await page.evaluate(() => { document.getElementById("player").vodflowPlayer.audioTrack = 1; });
  await page.waitForFunction(() => window.loaded.some((u) => u.includes("/hls/audio/")), null, { timeout: 30000 });
  const before = await page.evaluate(() => document.getElementById("player").currentTime);
  await page.waitForFunction((t) => document.getElementById("player").currentTime > t + 1.0, before, { timeout: 30000 });
  await page.waitForFunction(() => (window.subtitleFragments || 0) >= 1, null, { timeout: 30000 });
  findings.audio_track = await page.evaluate(() => document.getElementById("player").vodflowPlayer.audioTrack);
  findings.audio_fragments = await page.evaluate(() => window.loaded.filter((u) => u.includes("/hls/audio/")).length);
  findings.subtitle_fragments = await page.evaluate(() => window.subtitleFragments || 0);
  findings.cues = await page.evaluate(() => [...document.getElementById("player").textTracks]
    .flatMap((t) => [...(t.cues || [])].map((c) => c.text)));
  findings.playing = await page.evaluate(() => { const v = document.getElementById("player"); return { t: v.currentTime, err: v.error && v.error.code }; });
  findings.note = await page.evaluate(() => document.getElementById("player-note").textContent);
  findings.media = media;
  await page.screenshot({ path: `${shots}/route-tracks.png` });
});
