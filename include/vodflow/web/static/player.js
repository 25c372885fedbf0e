// The bundled player: hls.js (full build) on a published master playlist, with its audio tracks (the source's
// main track and every alternate one, EXT-X-MEDIA TYPE=AUDIO) in a selector a viewer can switch.
"use strict";
const vodflowPlayer = {
  attach(video, url, { audioSelect, note } = {}) {
    if (!(window.Hls && Hls.isSupported())) {
      if (video.canPlayType("application/vnd.apple.mpegurl")) video.src = url; // Safari plays HLS, tracks and all
      return null;
    }
    const hls = new Hls();
    hls.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal && note) note.textContent = `Player error: ${data.details}`; });
    if (audioSelect) {
      const render = () => {
        audioSelect.replaceChildren(...hls.audioTracks.map((track, i) => {
          const label = track.lang && track.lang !== "und" ? `${track.name} (${track.lang})` : track.name;
          const option = document.createElement("option");
          option.value = String(i);
          option.textContent = label; // names come from the source: text, never HTML
          option.selected = i === hls.audioTrack;
          return option;
        }));
        audioSelect.hidden = hls.audioTracks.length < 2;
        if (audioSelect.labels) for (const label of audioSelect.labels) label.hidden = audioSelect.hidden;
      };
      hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, render);
      hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, render);
      audioSelect.addEventListener("change", () => { hls.audioTrack = Number(audioSelect.value); });
    }
    hls.loadSource(url);
    hls.attachMedia(video);
    return hls;
  },
};
