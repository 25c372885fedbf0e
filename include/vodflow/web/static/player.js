// The bundled player. A video with a DASH manifest (the cmaf output) plays it with dash.js (bundled: static/
// dash.mediaplayer.min.js); otherwise, or where Media Source Extensions are missing, the HLS master plays with
// hls.js (full build), with its audio tracks (the source's main track and every alternate one, EXT-X-MEDIA
// TYPE=AUDIO) in a selector a viewer can switch. attach() stops whatever player the element had before.
"use strict";
const vodflowPlayer = {
  attach(video, url, { audioSelect, note, dash } = {}) {
    if (video.vodflowPlayer) video.vodflowPlayer.destroy();
    video.vodflowPlayer = null;
    const fail = (details) => { if (note) note.textContent = `Player error: ${details}`; };
    if (dash && window.dashjs && window.MediaSource) return vodflowPlayer.attachDash(video, dash, { audioSelect, fail });
    if (!url) return null;
    if (!(window.Hls && Hls.isSupported())) {
      if (video.canPlayType("application/vnd.apple.mpegurl")) video.src = url; // Safari plays HLS, tracks and all
      return null;
    }
    const hls = new Hls();
    hls.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal) fail(data.details); });
    if (audioSelect) {
      const render = () => vodflowPlayer.renderTracks(audioSelect, hls.audioTracks.map((t) => ({ name: t.name, lang: t.lang })),
                                                      hls.audioTrack);
      hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, render);
      hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, render);
      audioSelect.onchange = () => { hls.audioTrack = Number(audioSelect.value); };
    }
    hls.loadSource(url);
    hls.attachMedia(video);
    video.vodflowPlayer = hls;
    return hls;
  },

  attachDash(video, url, { audioSelect, fail }) {
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
};
