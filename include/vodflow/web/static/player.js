// The bundled player. A video with a DASH manifest (the cmaf output) plays it with dash.js (bundled: static/
// dash.mediaplayer.min.js); otherwise, or where Media Source Extensions are missing, the HLS master plays with
// hls.js (full build), with its audio tracks (the source's main track and every alternate one, EXT-X-MEDIA
// TYPE=AUDIO) in a selector a viewer can switch. attach() stops whatever player the element had before.
"use strict";
const vodflowPlayer = {
  // startPosition: where to start (seconds); an early (EVENT) playlist starts at 0, not at its live edge, and the
  // published master, after it, where the early one was.
  // handOver: the hls.js player on the element gives its MediaSource, buffer and all, to the new one (hls.js
  // transferMedia): from the early playlists to the published master without a gap (the same segments).
  attach(video, url, { audioSelect, textSelect, note, dash, startPosition, handOver } = {}) {
    const previous = video.vodflowPlayer;
    const media = handOver && url && !dash && previous && previous.transferMedia ? previous.transferMedia() || video : video;
    if (previous) previous.destroy();
    video.vodflowPlayer = null;
    const fail = (details) => { if (note) note.textContent = `Player error: ${details}`; };
    if (dash && window.dashjs && window.MediaSource) return vodflowPlayer.attachDash(video, dash, { audioSelect, textSelect, fail, startPosition });
    if (!url) return null;
    if (!(window.Hls && Hls.isSupported())) {
      if (video.canPlayType("application/vnd.apple.mpegurl")) {
        video.src = url; // Safari plays HLS, tracks and all
        if (startPosition) video.addEventListener("loadedmetadata", () => { video.currentTime = startPosition; }, { once: true });
      }
      return null;
    }
    const hls = new Hls(startPosition == null ? {} : { startPosition });
    hls.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal) fail(data.details); });
    if (audioSelect) {
      const render = () => vodflowPlayer.renderTracks(audioSelect, hls.audioTracks.map((t) => ({ name: t.name, lang: t.lang })),
                                                      hls.audioTrack);
      hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, render);
      hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, render);
      audioSelect.onchange = () => { hls.audioTrack = Number(audioSelect.value); };
    }
    if (textSelect) { // subtitles, automatic captions among them: offered, off until chosen (DEFAULT=NO)
      const render = () => vodflowPlayer.renderTextTracks(textSelect, hls.subtitleTracks.map((t) => ({ name: t.name, lang: t.lang })),
                                                          hls.subtitleTrack);
      hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, render);
      hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, render);
      textSelect.onchange = () => { hls.subtitleDisplay = true; hls.subtitleTrack = Number(textSelect.value); };
    }
    hls.loadSource(url);
    hls.attachMedia(media);
    video.vodflowPlayer = hls;
    return hls;
  },

  attachDash(video, url, { audioSelect, textSelect, fail, startPosition }) {
    const player = dashjs.MediaPlayer().create();
    player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
    player.on(dashjs.MediaPlayer.events.ERROR, (e) => fail(e.error && (e.error.message || e.error.code) || "DASH"));
    if (audioSelect) {
      const render = () => {
        const tracks = player.getTracksFor("audio");
        const current = player.getCurrentTrackFor("audio");
        vodflowPlayer.renderTracks(audioSelect, tracks.map((t) => ({ name: (t.labels && t.labels[0] && t.labels[0].text) || t.lang, lang: t.lang })),
                                   tracks.indexOf(current));
        audioSelect.onchange = () => player.setCurrentTrack(tracks[Number(audioSelect.value)]);
      };
      player.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, render);
      player.on(dashjs.MediaPlayer.events.TRACK_CHANGE_RENDERED, render);
    }
    if (textSelect) {
      const render = () => {
        const tracks = player.getTracksFor("text");
        vodflowPlayer.renderTextTracks(textSelect, tracks.map((t) => ({ name: (t.labels && t.labels[0] && t.labels[0].text) || t.lang, lang: t.lang })), -1);
        textSelect.onchange = () => { player.enableText(Number(textSelect.value) >= 0); player.setTextTrack(Number(textSelect.value)); };
      };
      player.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, render);
    }
    if (startPosition) player.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => player.seek(startPosition));
    player.initialize(video, url, false);
    video.vodflowPlayer = { destroy: () => player.destroy(), dash: player };
    return player;
  },

  // The selector lists the tracks (names come from the source: text, never HTML); hidden with fewer than two.
  renderTracks(select, tracks, current) {
    select.replaceChildren(...tracks.map((track, i) => {
      const option = document.createElement("option");
      option.value = String(i);
      option.textContent = track.lang && track.lang !== "und" ? `${track.name} (${track.lang})` : track.name;
      option.selected = i === current;
      return option;
    }));
    select.hidden = tracks.length < 2;
    if (select.labels) for (const label of select.labels) label.hidden = select.hidden;
  },

  // Subtitles: "Off" first (value -1), then each track; hidden when there is none.
  renderTextTracks(select, tracks, current) {
    vodflowPlayer.renderTracks(select, tracks, current);
    const off = document.createElement("option");
    off.value = "-1";
    off.textContent = "Off";
    off.selected = current < 0;
    select.prepend(off);
    select.hidden = tracks.length < 1;
    if (select.labels) for (const label of select.labels) label.hidden = select.hidden;
  },
};
